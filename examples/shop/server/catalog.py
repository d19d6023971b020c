"""The product catalogue: what the shop sells, and one product's page with its stock."""

from __future__ import annotations

from pydantic import BaseModel

from . import inventory


class Product(BaseModel):
    """One article of the shop."""

    id: int
    name: str
    price_cents: int


class ProductPage(BaseModel):
    """A product as its page shows it: the article and how many are left."""

    product: Product
    in_stock: int


PRODUCTS: dict[int, Product] = {
    p.id: p
    for p in (
        Product(id=1, name="Espresso cup", price_cents=450),
        Product(id=2, name="Milk jug", price_cents=1290),
        Product(id=3, name="Coffee grinder", price_cents=8900),
        Product(id=4, name="Paper filters (100)", price_cents=390),
    )
}


def all_products() -> list[Product]:
    """Every product, by id."""
    return [PRODUCTS[key] for key in sorted(PRODUCTS)]


def find(product_id: int) -> ProductPage | None:
    """The page of ``product_id`` (None when the shop does not sell it)."""
    product = PRODUCTS.get(product_id)
    if product is None:
        return None
    return ProductPage(product=product, in_stock=inventory.stock_level(product_id))
